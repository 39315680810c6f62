#!/usr/bin/python3
"""packaging/: the .deb builds, installs with apt, runs the demo from /usr/bin, its
systemd units pass `systemd-analyze verify`, and it removes cleanly; the container
files are checked without Docker (which does not run on these machines): the
runtime packages named in the Dockerfile provide every library the binary links.

Installs and removes a system package: run as root on a test machine only. The
machine is left as found (package purged; the ingesta user and /var/lib/ingesta
removed when this test created them).
"""
import os
import re
import shutil
import subprocess

from ingesta_test import SOURCE_ROOT, check, clean_env, main, tempdir

APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def sh(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    check(p.returncode == 0, f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-3000:]}\n"
          f"{p.stderr[-3000:]}")
    return p


def installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg],
                       capture_output=True, text=True)
    return p.stdout.strip() == "installed"


def build(d):
    p = sh(["bash", os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), os.path.join(d, "out")])
    deb = p.stdout.strip().splitlines()[-1]
    check(deb.endswith(".deb") and os.path.exists(deb), f"no .deb: {p.stdout}")
    contents = sh(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/bin/ingesta", "./lib/systemd/system/ingesta-upload.service",
                 "./lib/systemd/system/ingesta-collect@.service",
                 "./lib/systemd/system/ingesta-collect@.timer",
                 "./etc/ingesta/ms1-mysql.env.example", "./etc/ingesta/ms2-postgresql.env.example",
                 "./etc/ingesta/ms3-mongodb.env.example", "./etc/ingesta/upload.env",
                 "./usr/share/man/man1/ingesta.1.gz"):
        check(re.search(rf" {re.escape(path)}$", contents, re.M), f"{path} not in the .deb")
    info = sh(["dpkg-deb", "-f", deb, "Depends"]).stdout
    check("libmongoc-1.0-0" in info and "libpq5" in info, f"Depends: {info}")
    sh(["dpkg-deb", "--ctrl-tarfile", deb])
    print(f"deb: {os.path.basename(deb)} with binary, units, examples, man page; Depends: "
          f"{info.strip()[:80]}...")
    return deb


def check_units():
    if shutil.which("systemd-analyze") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "systemd"], env=APT_ENV,
                       capture_output=True)
    units = ["/lib/systemd/system/ingesta-upload.service", "ingesta-collect@ms1-mysql.service",
             "ingesta-collect@ms1-mysql.timer"]
    p = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True, text=True,
                       timeout=120)
    check(p.returncode == 0 and p.stderr.strip() == "",
          f"systemd-analyze verify: {p.returncode}\n{p.stdout}\n{p.stderr}")
    sec = subprocess.run(["systemd-analyze", "security", "--offline=true",
                          "/lib/systemd/system/ingesta-upload.service"],
                         capture_output=True, text=True, timeout=120)
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", sec.stdout)
    upload = open("/lib/systemd/system/ingesta-upload.service").read()
    for line in ("Type=notify", "Restart=on-failure", "StateDirectory=ingesta",
                 "ProtectSystem=strict", "ProtectHome=true", "PrivateTmp=true",
                 "NoNewPrivileges=true", "CapabilityBoundingSet=\n", "User=ingesta",
                 "WatchdogSec="):
        check(line in upload, f"ingesta-upload.service lacks {line.strip()}")
    timer = open("/lib/systemd/system/ingesta-collect@.timer").read()
    check("OnCalendar=hourly" in timer, "timer schedule")
    print("units: systemd-analyze verify clean" +
          (f"; security exposure {exposure.group(1)} {exposure.group(2)}" if exposure else ""))


def check_installed(d):
    out = sh(["/usr/bin/ingesta", "--version"]).stdout
    check(out.startswith("ingesta "), out)
    pw = sh(["getent", "passwd", "ingesta"]).stdout.split(":")
    check(pw[5] == "/var/lib/ingesta" and pw[6].strip().endswith("nologin"), f"user {pw}")
    st = os.stat("/var/lib/ingesta")
    check(oct(st.st_mode & 0o777) == "0o700", f"/var/lib/ingesta mode {oct(st.st_mode)}")
    check(os.stat("/etc/ingesta/upload.env").st_mode & 0o777 == 0o640, "upload.env mode")
    sh(["man", "-w", "ingesta"])
    demo = os.path.join(d, "demo")
    os.makedirs(demo)
    p = subprocess.run(["/usr/bin/ingesta", "demo"], cwd=demo, capture_output=True, text=True,
                       env=clean_env(), timeout=120)
    check(p.returncode == 0 and "extraction complete: 3 tables, 37 rows" in p.stderr,
          f"demo from the installed binary: {p.returncode}\n{p.stderr[-2000:]}")
    # The installed uploader runs as the ingesta user on its own state directory.
    env = clean_env({"SPOOL_DIR": "/var/lib/ingesta/spool"})
    sh(["runuser", "-u", "ingesta", "--", "/usr/bin/ingesta", "upload", "--once", "--config",
        "/etc/ingesta/upload.env"], env=env)
    sh(["runuser", "-u", "ingesta", "--", "/usr/bin/ingesta", "status", "--check",
        "--no-uploader-check", "--config", "/etc/ingesta/upload.env"], env=env)
    print(f"installed: {out.strip()}, user ingesta, /var/lib/ingesta 0700, man page, demo ok")


def check_container_files():
    """Docker does not run here: check what can be checked without it."""
    dockerfile = open(os.path.join(SOURCE_ROOT, "packaging", "Dockerfile")).read()
    # FROM ${BASE_IMAGE}: the ARG's default (debian:12-slim) unless built with another base.
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile, re.M))
    froms = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), f)
             for f in re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)]
    check(len(froms) == 2 and all(f.startswith("debian:12-slim") for f in froms),
          f"stages {froms}")
    check(re.search(r"^USER\s+(?!root|0\b)\S+", dockerfile, re.M), "no non-root USER")
    # Every library the binary needs comes from a package the runtime stage installs.
    runtime = dockerfile.split("FROM", 2)[2]
    pkgs = set(re.findall(r"\b(lib[a-z0-9.+-]+|ca-certificates)\b", runtime))
    needed = set()
    for line in sh(["objdump", "-p", "/usr/bin/ingesta"]).stdout.splitlines():
        m = re.match(r"\s+NEEDED\s+(\S+)", line)
        if m and not m.group(1).startswith(("libc.so", "libm.so")):
            owner = sh(["dpkg", "-S", "*/" + m.group(1)]).stdout.split(":")[0]
            needed.add(owner)
    check(needed <= pkgs, f"runtime stage lacks {sorted(needed - pkgs)} (has {sorted(pkgs)})")
    for p in needed:
        sh(["apt-cache", "show", p])
    import yaml
    compose = yaml.safe_load(open(os.path.join(SOURCE_ROOT, "packaging", "compose.yaml")))
    svcs = compose["services"]
    collectors = {n: s for n, s in svcs.items() if s.get("command", [None])[0] == "collect"}
    types = sorted(s["environment"]["DB_TYPE"] for s in collectors.values())
    check(types == ["mongodb", "mysql", "postgresql"], f"collectors {types}")
    uploaders = [s for s in svcs.values() if s.get("command", [None])[0] == "upload"]
    check(len(uploaders) == 1, "one uploader")
    vols = {tuple(s["volumes"]) for s in svcs.values()}
    check(len(vols) == 1 and any(v.startswith("spool:") for v in next(iter(vols))),
          f"services do not share one spool volume: {vols}")
    check(all(s.get("restart", "no") == "no" for s in collectors.values()),
          "collectors must be one-shot")
    print(f"container: 2 debian:12-slim stages, non-root, runtime packages cover "
          f"{len(needed)} libraries; compose: 3 one-shot collectors + 1 uploader, one spool")


def test():
    d = tempdir("packaging")
    had_user = subprocess.run(["getent", "passwd", "ingesta"], capture_output=True).returncode == 0
    had_state = os.path.exists("/var/lib/ingesta")
    check(not installed("ingesta"), "ingesta is already installed on this machine; not touching it")
    deb = build(d)
    try:
        sh(["apt-get", "install", "-y", "-q", deb], env=APT_ENV, timeout=600)
        check(installed("ingesta"), "not installed")
        check_installed(d)
        check_units()
        check_container_files()
    finally:
        subprocess.run(["apt-get", "purge", "-y", "-q", "ingesta"], env=APT_ENV,
                       capture_output=True, timeout=300)
        if not had_state:
            shutil.rmtree("/var/lib/ingesta", ignore_errors=True)
        if not had_user:
            subprocess.run(["userdel", "ingesta"], capture_output=True)
    check(not installed("ingesta") and not os.path.exists("/usr/bin/ingesta")
          and not os.path.exists("/lib/systemd/system/ingesta-upload.service"),
          "package not removed")
    check(not os.path.exists("/etc/ingesta"), "/etc/ingesta left after purge")
    print("removed: apt-get purge left the machine as found")


if __name__ == "__main__":
    main(test)
