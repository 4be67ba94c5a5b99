import { describe, expect, it } from "vitest";

import { escapeBytes } from "../../src/layer/escape.js";

describe("list-tree escaping", () => {
  it.each([
    ["plain ASCII", Buffer.from("abc"), "abc"],
    ["space and backslash", Buffer.from("a b\\c"), "a\\x20b\\x5cc"],
    ["control characters", Buffer.from("\t\n\x7f"), "\\x09\\x0a\\x7f"],
    ["UTF-8 letters", Buffer.from("é🐳"), "é🐳"],
    ["invalid UTF-8", Buffer.from([0x61, 0xff, 0xc3]), "a\\xff\\xc3"],
    ["overlong encoding", Buffer.from([0xc0, 0xaf]), "\\xc0\\xaf"],
    ["surrogate encoding", Buffer.from([0xed, 0xa0, 0x80]), "\\xed\\xa0\\x80"],
    ["no-break space", Buffer.from("\u00a0"), "\\xc2\\xa0"],
    ["format character", Buffer.from("\u200b"), "\\xe2\\x80\\x8b"],
  ])("%s", (_name, input, expected) => {
    expect(escapeBytes(input)).toBe(expected);
  });
});
