"""Unit tests of kd_targets.py: byte-level alignment and the tokenizer check (python -m unittest test_kd_targets)."""

from __future__ import annotations

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kd_targets import Record, Token, TokenizerMismatch, byte_targets, check_tokenizer  # noqa: E402


def rec(pieces: list[bytes]) -> Record:
    return Record("r", [(Token(p, False), -0.1, [(Token(p, False), -0.1), (Token(b"<eos>", True), -3.0)]) for p in pieces])


class ByteTargetsTest(unittest.TestCase):
    def test_byte_teacher_lands_on_the_bytes_of_the_assistant_text(self):
        t, mapped, unmapped = byte_targets(rec([b"4", b"2"]), b"<think>x</think> 42", top_k=2)
        self.assertEqual(unmapped, 0)
        self.assertEqual(mapped, 6)
        self.assertEqual(t.positions, [17, 18])  # completion-relative byte offsets of "4" and "2"
        self.assertEqual(t.ids, [[ord("4"), 257], [ord("2"), 257]])  # the special <eos> maps by name

    def test_word_teacher_does_not_map_onto_bytes(self):
        t, mapped, unmapped = byte_targets(rec([b" 42", b" is"]), b"x 42 is", top_k=2)
        self.assertGreater(unmapped, 0)
        with self.assertRaises(TokenizerMismatch) as e:
            check_tokenizer([(t is not None, mapped, unmapped)], "teacher T", "student S")
        self.assertIn("teacher T", str(e.exception))
        self.assertIn("student S", str(e.exception))

    def test_teacher_that_cuts_the_text_elsewhere_fails_the_check(self):
        with self.assertRaises(TokenizerMismatch):
            check_tokenizer([(True, 10, 0)], "byte teacher", "bpe student", placed=(2, 10))
        info = check_tokenizer([(True, 10, 0)], "t", "s", placed=(10, 10))
        self.assertEqual(info["placed_fraction"], 1.0)

    def test_text_rewritten_by_the_filters_has_no_targets(self):
        t, _, _ = byte_targets(rec([b"4", b"2"]), b"the answer is 17", top_k=2)
        self.assertIsNone(t)


if __name__ == "__main__":
    unittest.main()
