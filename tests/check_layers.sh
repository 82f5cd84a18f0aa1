#!/bin/sh
# check_layers.sh - the layers of pgcutover depend one way (README, "How it is built"):
#
#   protocol/  <-  proxy/auth/  <-  proxy/io/  <-  proxy/core/  <-  proxy/
#              <-  admin/cutover/  <-  admin/  <-  proxy/main.c
#
# A file may include the headers of its own layer and of the layers to its
# left, never one to its right.  proxy/main.c, the composition root, is the
# only file that includes every layer.  A few library rules go with the
# layers: protocol/ is libc only; proxy/auth/ does no I/O (no libevent, no
# libpq); proxy/io/ knows nothing of PostgreSQL (no protocol/, no libpq);
# libpq is used by admin/ (control connections) and, for its conninfo
# parser only, by proxy/core/conninfo.c.
#
# Prints every include that points the wrong way and exits 1 when there is
# one.  Run by make (make check-layers) before anything is compiled.
cd "$(dirname "$0")/.." || exit 2

rank() {
	case "$1" in
	proxy/main.c) echo 7 ;;
	protocol/*) echo 0 ;;
	proxy/auth/*) echo 1 ;;
	proxy/io/*) echo 2 ;;
	proxy/core/*) echo 3 ;;
	proxy/*) echo 4 ;;
	admin/cutover/*) echo 5 ;;
	admin/*) echo 6 ;;
	*) echo -1 ;;
	esac
}

bad=0
for f in protocol/*.[ch] proxy/*.[ch] proxy/*/*.[ch] admin/*.[ch] admin/*/*.[ch]; do
	[ -f "$f" ] || continue
	own=$(rank "$f")
	# project headers: "dir/name.h"
	for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
		theirs=$(rank "$h")
		if [ "$theirs" -lt 0 ]; then
			echo "$f: includes \"$h\", which belongs to no layer"
			bad=1
		elif [ "$theirs" -gt "$own" ]; then
			echo "$f: includes \"$h\" from a higher layer"
			bad=1
		fi
	done
	# libraries by layer
	libs=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^>]*\)>.*/\1/p' "$f")
	for l in $libs; do
		case "$f:$l" in
		protocol/*:event2/* | protocol/*:openssl/* | protocol/*:libpq-fe.h | protocol/*:ini.h)
			echo "$f: protocol/ is libc only, but includes <$l>"
			bad=1
			;;
		proxy/auth/*:event2/* | proxy/auth/*:libpq-fe.h | proxy/auth/*:sys/socket.h)
			echo "$f: proxy/auth/ does no I/O, but includes <$l>"
			bad=1
			;;
		proxy/io/*:libpq-fe.h | proxy/core/*:libpq-fe.h | proxy/*:libpq-fe.h)
			case "$f" in
			proxy/main.c | proxy/core/conninfo.c) ;;
			*)
				echo "$f: libpq is for the control connections (admin/), but included here"
				bad=1
				;;
			esac
			;;
		esac
	done
	case "$f" in
	proxy/io/*)
		if grep -q '^[[:space:]]*#[[:space:]]*include[[:space:]]*"protocol/' "$f"; then
			echo "$f: proxy/io/ knows nothing of PostgreSQL, but includes protocol/"
			bad=1
		fi
		;;
	esac
done
if [ "$bad" -ne 0 ]; then
	echo "check-layers: an include points up a layer (see tests/check_layers.sh)"
	exit 1
fi
exit 0
