#!/usr/bin/env bash
# Installs libctc for C and C++ consumers:
#   PREFIX/lib/libctc.so.X.Y.Z (soname libctc.so.X, or libctc.so.0.Y while X is 0) with libctc.so.X and libctc.so links,
#   PREFIX/lib/libctc.a, PREFIX/include/ctc.h, PREFIX/include/ctc.hpp,
#   PREFIX/lib/pkgconfig/ctc.pc and PREFIX/lib/cmake/ctc/ctc{Config,ConfigVersion}.cmake
#   (find_package(ctc) gives the imported target ctc::ctc).
#
# Usage: scripts/install.sh [--prefix DIR] [--libdir NAME] [--destdir DIR]
#   --prefix   install prefix (default /usr/local)
#   --libdir   library directory under the prefix (default lib)
#   --destdir  staging root prepended to every path (packaging), like make's DESTDIR
# Builds in target/install with cargo (release profile) so the soname can be set at link time.
set -euo pipefail
prefix=/usr/local
libdir=lib
destdir=
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --libdir) libdir=$2; shift 2 ;;
    --destdir) destdir=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) prefix=$(cd "$prefix" 2>/dev/null && pwd || { mkdir -p "$prefix" && cd "$prefix" && pwd; }) ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
# While the major version is 0 every minor release may change the ABI (README, "Versions"): the
# soname carries it, so a 0.1 binary never loads 0.2 by accident.
if [ "$major" = 0 ]; then soname="libctc.so.0.$minor"; else soname="libctc.so.$major"; fi

export CARGO_TARGET_DIR="$root/target/install"
cargo rustc --quiet --release --lib --crate-type cdylib,staticlib -- -C "link-arg=-Wl,-soname,$soname"
built="$CARGO_TARGET_DIR/release"

inc="$destdir$prefix/include"
lib="$destdir$prefix/$libdir"
mkdir -p "$inc" "$lib/pkgconfig" "$lib/cmake/ctc"
install -m 644 include/ctc.h bindings/cpp/ctc.hpp "$inc/"
install -d "$destdir$prefix/share/doc/libctc"
install -m 644 LICENSE-MIT LICENSE-APACHE CHANGELOG.md README.md "$destdir$prefix/share/doc/libctc/"
install -m 755 "$built/libctc.so" "$lib/libctc.so.$version"
ln -sf "libctc.so.$version" "$lib/$soname"
ln -sf "$soname" "$lib/libctc.so"
install -m 644 "$built/libctc.a" "$lib/libctc.a"

cat > "$lib/pkgconfig/ctc.pc" <<PC
prefix=$prefix
libdir=\${prefix}/$libdir
includedir=\${prefix}/include

Name: ctc
Description: CTC loss with a C ABI (torch.nn.functional.ctc_loss semantics)
Version: $version
Libs: -L\${libdir} -lctc
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC

cat > "$lib/cmake/ctc/ctcConfig.cmake" <<'CMAKE'
# find_package(ctc) -> imported targets ctc::ctc (shared) and ctc::ctc_static.
get_filename_component(_ctc_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET ctc::ctc)
  add_library(ctc::ctc SHARED IMPORTED)
  set_target_properties(ctc::ctc PROPERTIES
    IMPORTED_LOCATION "${_ctc_prefix}/@LIBDIR@/libctc.so.@VERSION@"
    IMPORTED_SONAME "@SONAME@"
    INTERFACE_INCLUDE_DIRECTORIES "${_ctc_prefix}/include")
  add_library(ctc::ctc_static STATIC IMPORTED)
  set_target_properties(ctc::ctc_static PROPERTIES
    IMPORTED_LOCATION "${_ctc_prefix}/@LIBDIR@/libctc.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_ctc_prefix}/include"
    INTERFACE_LINK_LIBRARIES "pthread;dl;m")
endif()
set(ctc_VERSION "@VERSION@")
unset(_ctc_prefix)
CMAKE
sed -i "s|@LIBDIR@|$libdir|g; s|@VERSION@|$version|g; s|@SONAME@|$soname|g" "$lib/cmake/ctc/ctcConfig.cmake"

cat > "$lib/cmake/ctc/ctcConfigVersion.cmake" <<CMAKE
set(PACKAGE_VERSION "$version")
# Additions only within a major version (the C ABI is append-only).
if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major" AND NOT PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
elseif(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
CMAKE

echo "installed libctc $version under $destdir$prefix ($libdir/libctc.so.$version, soname $soname)"
