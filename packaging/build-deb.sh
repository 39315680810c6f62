#!/usr/bin/env bash
# Build a Debian package of ingesta from this tree, without debhelper:
#   bash packaging/build-deb.sh [OUTDIR]      (default OUTDIR: build-deb/)
# meson builds a release binary and installs it into a staging directory; the
# systemd units, example configuration, man page and maintainer scripts are
# added beside it; dpkg-shlibdeps computes the library dependencies (plus passwd for
# useradd in postinst, procps for the units' ExecReload=/bin/kill) and
# dpkg-deb writes OUTDIR/ingesta_<version>_<arch>.deb (version: see below). Needs what
# packaging/build.sh installs, plus dpkg-dev.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
out=$(realpath -m "${1:-build-deb}")
work="$out/work"
stage="$work/stage"

if ! command -v dpkg-shlibdeps >/dev/null; then
  echo "build-deb.sh: installing dpkg-dev" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dpkg-dev >&2
fi

rm -rf "$work"
mkdir -p "$stage"
meson setup "$work/build" --prefix=/usr --buildtype=release -Dfailpoints=false >/dev/null
ninja -C "$work/build" ingesta >/dev/null
DESTDIR="$stage" meson install -C "$work/build" --no-rebuild --quiet
strip --strip-unneeded "$stage/usr/bin/ingesta"
version=$("$stage/usr/bin/ingesta" version | awk '{print $2}')
# Between releases every commit gets its own, increasing package version, so that
# apt-get install of a newer build is an upgrade (not "already the newest"):
# <version>+git<commit time, UTC>.<hash>, unless HEAD is tagged v<version>.
# DEB_VERSION overrides.
if [[ -n ${DEB_VERSION:-} ]]; then
  version=$DEB_VERSION
elif git -C "$root" rev-parse --verify -q HEAD >/dev/null 2>&1 &&
  [[ $(git -C "$root" tag --points-at HEAD) != *"v$version"* ]]; then
  version="$version+git$(TZ=UTC git -C "$root" log -1 --format=%cd \
    --date=format-local:%Y%m%d%H%M%S).$(git -C "$root" rev-parse --short=7 HEAD)"
fi
arch=$(dpkg --print-architecture)

install -D -m 0644 -t "$stage/lib/systemd/system" packaging/systemd/ingesta-upload.service \
  packaging/systemd/ingesta-collect@.service packaging/systemd/ingesta-collect@.timer
install -D -m 0644 -t "$stage/etc/ingesta" packaging/etc/ms1-mysql.env.example \
  packaging/etc/ms2-postgresql.env.example packaging/etc/ms3-mongodb.env.example
install -D -m 0640 packaging/etc/upload.env "$stage/etc/ingesta/upload.env"
install -d -m 0755 "$stage/usr/share/man/man1"
gzip -9n -c packaging/ingesta.1 >"$stage/usr/share/man/man1/ingesta.1.gz"
install -D -m 0644 README.md "$stage/usr/share/doc/ingesta/README.md"
install -D -m 0644 docs/status.schema.json "$stage/usr/share/doc/ingesta/status.schema.json"
install -D -m 0644 docs/TYPES.md "$stage/usr/share/doc/ingesta/TYPES.md"
cat >"$stage/usr/share/doc/ingesta/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ingesta
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT

install -d -m 0755 "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
(cd "$stage" && find etc -type f | sed 's|^|/|' | sort) >"$stage/DEBIAN/conffiles"

# Library dependencies, as dpkg-shlibdeps computes them (it wants a debian/control).
mkdir -p "$work/shlibs/debian"
printf 'Source: ingesta\n\nPackage: ingesta\nArchitecture: any\n' >"$work/shlibs/debian/control"
deps=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$stage/usr/bin/ingesta" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: ingesta
Version: $version
Architecture: $arch
Maintainer: ingesta maintainers <ingesta@localhost>
Installed-Size: $size
Depends: $deps, passwd, procps
Recommends: ca-certificates
Section: database
Priority: optional
Homepage: https://github.com/ingesta/ingesta
Description: copy operational databases into an S3 data lake, exactly once
 ingesta extracts every table of a MySQL/MariaDB, PostgreSQL, MongoDB or
 SQLite database as NDJSON into a local spool, and an uploader daemon ships
 the files to S3 (or a local directory) with retries, checksum verification
 and exactly-once keys. Includes systemd units for the uploader and for one
 hourly collector per source (/etc/ingesta/<source>.env).
CONTROL

deb="$out/ingesta_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
