#!/bin/sh
# build-deb.sh OUTDIR - build the Debian package (make deb).
#
# dpkg-buildpackage writes its results in the parent directory of the tree
# it builds, and its intermediate files in debian/: so the tree is copied
# to OUTDIR/src/pgcutover-VERSION first (without build directories, .git and
# caches), and the package built there with `dpkg-buildpackage -us -uc -b`.
# The .deb ends up as OUTDIR/pgcutover_VERSION_ARCH.deb, lintian's report
# beside it as OUTDIR/lintian.txt.
#
# A build takes about a minute; the tests ask for the package on every run.
# So a checksum of every file copied is kept in OUTDIR/stamp, and nothing is
# built again while the tree has not changed.
set -eu
cd "$(dirname "$0")/.."
out=${1:-build/deb}
version=$(sed -n 's/^#define PGCUTOVER_VERSION "\(.*\)"$/\1/p' proxy/core/version.h)
changelog=$(dpkg-parsechangelog -S Version)
if [ "$version" != "$changelog" ]; then
	echo "build-deb.sh: debian/changelog is at $changelog, proxy/core/version.h at $version" >&2
	exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$out/pgcutover_${version}_${arch}.deb"

# the files of the tree, in a stable order
files() {
	find . \( -path ./build -o -path './build-*' -o -path ./.git -o -name __pycache__ \
		-o -name '*.pyc' \) -prune -o -type f -print | LC_ALL=C sort
}
mkdir -p "$out"
sum=$(files | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -f "$deb" ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$sum" ]; then
	echo "build-deb.sh: $deb is up to date"
	exit 0
fi

rm -rf "$out/src" "$out/stamp" "$deb"
src="$out/src/pgcutover-$version"
mkdir -p "$src"
files | tar -cf - -T - | tar -xf - -C "$src"
# a make that runs this one (make test, make test-asan) must not hand its
# variables (CC, CFLAGS, BUILD...) down to the package build
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
(cd "$src" && dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
}
mv "$out/src/pgcutover_${version}_${arch}.deb" "$deb"
# lintian's verdict on the package: errors fail the build, the rest is kept for reading
lintian --info "$deb" > "$out/lintian.txt" 2>&1 || true
if grep -q '^E: ' "$out/lintian.txt"; then
	cat "$out/lintian.txt" >&2
	echo "build-deb.sh: lintian reports errors on $deb" >&2
	exit 1
fi
echo "$sum" > "$out/stamp"
echo "build-deb.sh: built $deb"
