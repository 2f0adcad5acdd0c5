"""Specification of patch parsing and application (unified diffs and apply_patch envelopes)."""

from __future__ import annotations

import pytest

from rig.workload.corpus import Corpus
from rig.workload.patch import PatchError, apply_patch, parse_patch

FIX = """\
--- a/src/utils/formatDate.ts
+++ b/src/utils/formatDate.ts
@@ -99,4 +99,4 @@
 export function toISODate(date: Date): string {
   const year = date.getUTCFullYear();
-  const month = pad2(date.getUTCMonth());
+  const month = pad2(date.getUTCMonth() + 1);
   const day = pad2(date.getUTCDate());
"""


@pytest.fixture
def corpus() -> Corpus:
    return Corpus.load()


def test_unified_diff_applies_by_content_even_with_wrong_line_numbers(corpus: Corpus) -> None:
    assert apply_patch(corpus, FIX) == [("M", "src/utils/formatDate.ts")]
    assert "pad2(date.getUTCMonth() + 1)" in corpus.files["src/utils/formatDate.ts"]


def test_a_patch_that_no_longer_applies_fails_like_git(corpus: Corpus) -> None:
    apply_patch(corpus, FIX)
    with pytest.raises(PatchError) as info:
        apply_patch(corpus, FIX)
    assert str(info.value) == (
        "error: patch failed: src/utils/formatDate.ts:99\n"
        "error: src/utils/formatDate.ts: patch does not apply"
    )


def test_a_failing_file_leaves_every_file_unchanged(corpus: Corpus) -> None:
    before = dict(corpus.files)
    broken = FIX + "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-no such line\n+x\n"
    with pytest.raises(PatchError):
        apply_patch(corpus, broken)
    assert corpus.files == before


def test_envelope_format_adds_updates_and_deletes(corpus: Corpus) -> None:
    patch = (
        "*** Begin Patch\n"
        "*** Add File: src/utils/slug.ts\n"
        "+export const slug = (s: string) => s.toLowerCase();\n"
        "*** Update File: src/utils/classNames.ts\n"
        "@@ export function cx(...values: ClassValue[]): string {\n"
        "-  return classes.join(' ');\n"
        "+  return classes.filter(Boolean).join(' ');\n"
        "*** Delete File: src/components/EmptyState.tsx\n"
        "*** End Patch\n"
    )
    changes = apply_patch(corpus, patch)
    assert changes == [
        ("A", "src/utils/slug.ts"),
        ("M", "src/utils/classNames.ts"),
        ("D", "src/components/EmptyState.tsx"),
    ]
    assert corpus.files["src/utils/slug.ts"].endswith("s.toLowerCase();\n")
    assert "classes.filter(Boolean)" in corpus.files["src/utils/classNames.ts"]
    assert "src/components/EmptyState.tsx" not in corpus.files


def test_new_file_from_dev_null(corpus: Corpus) -> None:
    patch = "--- /dev/null\n+++ b/src/x.ts\n@@ -0,0 +1,2 @@\n+export const x = 1;\n+export const y = 2;\n"
    assert apply_patch(corpus, patch) == [("A", "src/x.ts")]
    assert corpus.files["src/x.ts"] == "export const x = 1;\nexport const y = 2;\n"


def test_updating_a_missing_file_fails(corpus: Corpus) -> None:
    with pytest.raises(PatchError, match=r"src/nope\.ts: No such file or directory"):
        apply_patch(corpus, "--- a/src/nope.ts\n+++ b/src/nope.ts\n@@ -1 +1 @@\n-a\n+b\n")


def test_text_without_a_patch_is_rejected() -> None:
    with pytest.raises(PatchError, match="No valid patches in input"):
        parse_patch("please change the month to month + 1")
