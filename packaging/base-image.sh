#!/usr/bin/env bash
# A Debian 12 base image without any image registry, for machines that cannot pull
# debian:12-slim: debootstrap --variant=minbase bookworm from the Debian mirror this
# machine's apt already uses, imported into podman.
#
#   bash packaging/base-image.sh [--force] [--rootfs-only] [TAG]
#   podman build --build-arg BASE_IMAGE=localhost/ingesta-base:bookworm \
#     -f packaging/Dockerfile -t ingesta .
#
# TAG defaults to localhost/ingesta-base:bookworm. The root filesystem is cached as
# $CACHE/bookworm-minbase.tar.zst, CACHE = ${INGESTA_BASE_CACHE:-
# ${INGESTA_TEST_CACHE:-$HOME/.cache/ingesta-test}/base}: a second run re-imports it
# if the image is gone and is otherwise a no-op. --force rebuilds both;
# --rootfs-only makes the tarball and prints its path (no podman needed).
# Like debian:12-slim, it has no documentation, man pages or translations. The
# image's apt sources are bookworm, bookworm-updates and bookworm-security from
# the mirrors of /etc/apt/sources.list{,.d/*} (like debian:12-slim's), or
# $DEBIAN_MIRROR / $DEBIAN_SECURITY_MIRROR. Needs root (debootstrap), debootstrap,
# zstd and podman.
set -euo pipefail

force=0
rootfs_only=0
tag=localhost/ingesta-base:bookworm
while (($#)); do
  case "$1" in
  --force) force=1 ;;
  --rootfs-only) rootfs_only=1 ;;
  -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "base-image.sh: unknown option $1" >&2; exit 2 ;;
  *) tag=$1 ;;
  esac
  shift
done
log() { echo "base-image.sh: $*" >&2; }

cache="${INGESTA_BASE_CACHE:-${INGESTA_TEST_CACHE:-${HOME:-/root}/.cache/ingesta-test}/base}"
tarball="$cache/bookworm-minbase.tar.zst"

# apt_uri SUITE: the first URI apt uses for SUITE (one-line .list or deb822 .sources).
apt_uri() {
  local suite=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk -v s="$suite" '$1 == "deb" {
      i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # Stanzas are separated by blank lines; keep the URIs of a stanza naming SUITE.
    awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" } {
      uri = ""; hit = 0; deb = 0
      for (n = 1; n <= NF; n++) {
        if ($n ~ /^Types:/ && $n ~ /[ \t]deb([ \t]|$)/) deb = 1
        if ($n ~ /^URIs:/) { split($n, u, /[ \t]+/); uri = u[2] }
        if ($n ~ /^Suites:/) { m = split($n, x, /[ \t]+/); for (k = 2; k <= m; k++) if (x[k] == s) hit = 1 }
      }
      if (deb && hit && uri != "") { print uri; exit } }' "$f"
  done
}

make_rootfs() {
  local mirror security updates dir start=$SECONDS
  mirror=${DEBIAN_MIRROR:-$(apt_uri bookworm | head -n 1)}
  [[ -n $mirror ]] || { log "no bookworm mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR"; exit 1; }
  security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri bookworm-security | head -n 1)}
  updates=$(apt_uri bookworm-updates | head -n 1)
  command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
  mkdir -p "$cache"
  dir=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$dir"' EXIT
  log "debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 30 "$cache/debootstrap.log" >&2
    exit 1
  }
  {
    echo "deb $mirror bookworm main"
    [[ -z $updates ]] || echo "deb $mirror bookworm-updates main"
    [[ -z $security ]] || echo "deb $security bookworm-security main"
  } >"$dir/etc/apt/sources.list"
  # What debian:12-slim leaves out: documentation, man pages and translations
  # (also of packages installed later: dpkg path-exclude), package lists, caches, logs.
  cat >"$dir/etc/dpkg/dpkg.cfg.d/ingesta-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
SLIM
  find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/groff/* "$dir"/usr/share/info/* \
    "$dir"/usr/share/lintian/* "$dir"/usr/share/locale/*
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/* "$dir"/tmp/* "$dir/debootstrap"
  : >"$dir/etc/hostname"
  : >"$dir/etc/resolv.conf"
  tar --numeric-owner --xattrs -C "$dir" -c . | zstd -q -T0 -10 -o "$tarball.tmp"
  mv -f "$tarball.tmp" "$tarball"
  rm -rf "$dir"
  trap - EXIT
  log "rootfs: $tarball ($(du -h "$tarball" | cut -f1)) in $((SECONDS - start)) s"
}

if ((force)) || [[ ! -s $tarball ]]; then
  make_rootfs
fi
if ((rootfs_only)); then
  echo "$tarball"
  exit 0
fi
if ((force)) || ! podman image exists "$tag"; then
  start=$SECONDS
  zstd -q -dc "$tarball" | podman import -q --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase bookworm" - "$tag" >/dev/null
  log "imported $tag in $((SECONDS - start)) s"
else
  log "$tag already present (--force rebuilds it)"
fi
echo "$tag"
