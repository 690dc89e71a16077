#!/usr/bin/env python3
"""Turn a binary file into a C source defining `const unsigned char NAME[]`
and `const unsigned int NAME_len` (used to embed the iasl-compiled DSDT)."""
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: bin2c.py INPUT OUTPUT NAME")
    src, dst, name = sys.argv[1:]
    data = open(src, "rb").read()
    lines = [", ".join(f"0x{b:02x}" for b in data[i:i + 12])
             for i in range(0, len(data), 12)]
    with open(dst, "w") as out:
        out.write(f"/* Generated from {src.split('/')[-1]} by tools/bin2c.py. */\n")
        out.write(f"const unsigned char {name}[] = {{\n\t")
        out.write(",\n\t".join(lines))
        out.write("\n};\n")
        out.write(f"const unsigned int {name}_len = {len(data)};\n")


if __name__ == "__main__":
    main()
