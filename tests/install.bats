#!/usr/bin/env bats
# make install and make uninstall into a DESTDIR: the tools, libproto static and shared (with
# its soname), the headers, libproto.pc and the man pages; examples/hash_file.c built against
# what was installed, through pkg-config alone, gives the ids p2p-chunk --id gives; uninstall
# leaves no file behind.

bats_require_minimum_version 1.5.0
load ../bats/common

REPO="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"

setup() {
	common_setup
	[[ $P2P_BIN == "$REPO/build/bin" ]] || skip "tests another build ($P2P_BIN)"
	command -v pkg-config >/dev/null || skip "pkg-config is not installed"
	# make check runs this suite: the outer make's jobserver is not ours
	unset MAKEFLAGS MAKELEVEL MFLAGS
	DEST="$BATS_TEST_TMPDIR/dest"
	make_file a 300000 1
	make_file b 5M 2
	: >empty
}

@test "make all builds examples/hash_file in the tree: the ids p2p-chunk --id prints" {
	run -0 --separate-stderr "$REPO/build/examples/hash_file" a b empty
	assert_output "$(for f in a b empty; do p2p-chunk --id "$f"; done)"
	run -1 --separate-stderr "$REPO/build/examples/hash_file" nosuch
	assert_stderr 'hash_file: nosuch: No such file or directory'
	run -2 --separate-stderr "$REPO/build/examples/hash_file"
}

@test "make install DESTDIR= PREFIX=/usr: tools, static and shared libproto, headers, libproto.pc, man pages" {
	run -0 make -s -C "$REPO" install DESTDIR="$DEST" PREFIX=/usr
	local t
	for t in p2p-chunk p2p-serve p2p-fetch p2p-verify p2p-discover p2p-send p2p-bench; do
		assert_file_executable "$DEST/usr/bin/$t"
	done
	assert_file_exists "$DEST/usr/lib/libproto.a"
	assert_file_executable "$DEST/usr/lib/libproto.so.0.1.0"
	assert_equal "$(readlink "$DEST/usr/lib/libproto.so.0")" libproto.so.0.1.0
	assert_equal "$(readlink "$DEST/usr/lib/libproto.so")" libproto.so.0
	run -0 readelf -d "$DEST/usr/lib/libproto.so.0.1.0"
	assert_line --regexp 'SONAME.*\[libproto\.so\.0\]'
	# only the public API is exported
	run -0 nm -D --defined-only "$DEST/usr/lib/libproto.so.0.1.0"
	assert_line --regexp ' T proto_manifest_build_fd(@@LIBPROTO_0)?$'
	local sym bad=()
	while read -r _ _ sym; do
		[[ $sym == LIBPROTO_0 || ($sym == proto_* && $sym != proto__*) ]] || bad+=("$sym")
	done <<<"$output"
	((${#bad[@]} == 0)) || fail "exported outside the public API: ${bad[*]}"
	# the static library defines nothing outside libproto's prefix either
	run -0 nm -g --defined-only "$DEST/usr/lib/libproto.a"
	bad=()
	while read -r _ _ sym; do
		[[ -z $sym || $sym == proto_* ]] || bad+=("$sym")
	done < <(grep -E '^[0-9a-f]+ [A-Z] ' <<<"$output")
	((${#bad[@]} == 0)) || fail "libproto.a defines names without proto_: ${bad[*]}"
	assert_file_exists "$DEST/usr/include/proto/proto.h"
	assert_file_exists "$DEST/usr/include/proto/log.h"
	# the private headers stay in the tree, and proto.h needs none of them
	for t in check frame picker log_private manifest_private \
	    store_private conn_private server_private; do
		assert_file_not_exists "$DEST/usr/include/proto/$t.h"
	done
	for t in $(sed -n 's/^#include "\(.*\)"$/\1/p' "$DEST/usr/include/proto/"*.h | sort -u); do
		assert_file_exists "$DEST/usr/include/proto/$t"
	done
	assert_file_exists "$DEST/usr/share/man/man1/p2p-fetch.1"
	assert_file_exists "$DEST/usr/share/man/man1/p2p-send.1"
	assert_file_exists "$DEST/usr/include/proto/link.h"
	assert_file_exists "$DEST/usr/share/man/man7/p2p.7"
	run -0 grep -x 'libdir=/usr/lib' "$DEST/usr/lib/pkgconfig/libproto.pc"
	"$DEST/usr/bin/p2p-chunk" -V
}

@test "examples/hash_file.c builds against the installed library through pkg-config, shared and static" {
	make -s -C "$REPO" install DESTDIR="$DEST" PREFIX=/usr
	export PKG_CONFIG_PATH="$DEST/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$DEST"
	run -0 pkg-config --modversion libproto
	assert_output 0.1.0
	# shared: the loader finds libproto.so.0 in DESTDIR
	# shellcheck disable=SC2046
	cc -o hash_file "$REPO/examples/hash_file.c" $(pkg-config --cflags --libs libproto)
	run -0 env LD_LIBRARY_PATH="$DEST/usr/lib" ldd ./hash_file
	assert_line --regexp "libproto\.so\.0 => $DEST/usr/lib/libproto\.so\.0 "
	run -0 --separate-stderr env LD_LIBRARY_PATH="$DEST/usr/lib" ./hash_file a b empty
	assert_output "$(for f in a b empty; do p2p-chunk --id "$f"; done)"
	# static: the archive and the libraries pkg-config --static names
	local libs
	libs=$(pkg-config --static --libs libproto)
	# shellcheck disable=SC2046,SC2086
	cc -o hash_file.static "$REPO/examples/hash_file.c" $(pkg-config --cflags libproto) \
		"$DEST/usr/lib/libproto.a" ${libs//-lproto/}
	run -0 ldd ./hash_file.static
	refute_output --partial libproto
	run -0 --separate-stderr ./hash_file.static a b empty
	assert_output "$(for f in a b empty; do p2p-chunk --id "$f"; done)"
}

@test "make uninstall DESTDIR= PREFIX=/usr leaves no file or link behind" {
	make -s -C "$REPO" install DESTDIR="$DEST" PREFIX=/usr
	(($(find "$DEST" -type f -o -type l | wc -l) > 20))
	run -0 make -s -C "$REPO" uninstall DESTDIR="$DEST" PREFIX=/usr
	run find "$DEST" -type f -o -type l
	assert_output ''
}
