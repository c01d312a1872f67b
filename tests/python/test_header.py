"""The binding's tables against include/ctc.h: every enumeration value (names and values, both
ways), every structure field (order and C type) and every function signature."""

import ctypes
import re

import pytest

from conftest import ROOT
from libctc import _native as N

HEADER = (ROOT / "include" / "ctc.h").read_text()

# C spellings in ctc.h -> the ctypes type the binding must declare for them.
C_TYPES = {
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "int64_t": ctypes.c_int64,
    "size_t": ctypes.c_size_t,
    "bool": ctypes.c_bool,
    "void *": ctypes.c_void_p,
    "const char *": ctypes.c_char_p,
    "CtcStatus": ctypes.c_int32,
    "CtcDType": ctypes.c_int32,
    "CtcDevice": ctypes.c_int32,
    "CtcReduction": ctypes.c_int32,
    "CtcCall": ctypes.c_int32,
    "CtcInput": ctypes.c_int32,
    "CtcGradient": ctypes.c_int32,
    "struct CtcOptions": N.CtcOptions,
    "const struct CtcTensor *": ctypes.POINTER(N.CtcTensor),
    "struct CtcTensor *": ctypes.POINTER(N.CtcTensor),
    "const struct CtcOptions *": ctypes.POINTER(N.CtcOptions),
    "size_t *": ctypes.POINTER(ctypes.c_size_t),
}


def header_constants(prefix):
    return {m[1]: int(m[2]) for m in re.finditer(rf"^#define ({prefix}\w+) (-?\d+)$", HEADER, re.MULTILINE)}


@pytest.mark.parametrize("prefix", list(N.ENUMS))
def test_every_enumeration_value_matches_the_header(prefix):
    ours = {prefix + member.name: member.value for member in N.ENUMS[prefix]}
    theirs = header_constants(prefix)
    assert theirs, f"no {prefix}* constants in ctc.h"
    assert ours == theirs


def test_every_enumeration_type_of_the_header_is_in_the_table():
    # Each `typedef int32_t Ctc<Name>;` with constants in the header is one the binding handles.
    typedefs = set(re.findall(r"^typedef int32_t Ctc(\w+);$", HEADER, re.MULTILINE))
    covered = {prefix[len("CTC_") : -1] for prefix in N.ENUMS}
    assert {t.upper() for t in typedefs} == covered


def c_type(text):
    return C_TYPES[re.sub(r"\s*\*\s*", " *", " ".join(text.split())).strip()]


@pytest.mark.parametrize("struct", [N.CtcTensor, N.CtcOptions])
def test_structure_fields_match_the_header(struct):
    name = struct.__name__
    body = re.search(rf"typedef struct {name} \{{(.*?)\}} {name};", HEADER, re.DOTALL).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.DOTALL)
    fields = []
    for decl in filter(None, (d.strip() for d in body.split(";"))):
        m = re.fullmatch(r"(.+?)\s*\b(\w+)(?:\[(\d+)\])?", decl)
        ctype = c_type(m[1])
        fields.append((m[2], ctype * int(m[3]) if m[3] else ctype))
    assert struct._fields_ == fields


def header_functions():
    found = {}
    for m in re.finditer(r"^([^#/*\n][^(\n]*?)\b(ctc_\w+)\(([^)]*)\);$", HEADER, re.MULTILINE):
        params = [] if m[3].strip() == "void" else [re.sub(r"\b\w+$", "", p).strip() for p in m[3].split(",")]
        found[m[2]] = ([c_type(p) for p in params], c_type(m[1].strip()))
    return found


def test_every_function_signature_matches_the_header():
    theirs = header_functions()
    assert set(N.SIGNATURES) == set(theirs)
    for name, (argtypes, restype) in N.SIGNATURES.items():
        assert (argtypes, restype) == theirs[name], name
