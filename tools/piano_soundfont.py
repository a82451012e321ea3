"""Maintainer tool: cut the acoustic grand piano (bank 0, program 0) out of a General MIDI SoundFont.

    python tools/piano_soundfont.py /usr/share/sounds/sf2/FluidR3_GM.sf2 src/pianogan/data/soundfont/FluidR3_piano.sf2

The result is a valid SF2 file with one preset, its instruments, and only the samples they use,
byte for byte (each followed by the 46 zero points the SF2 2.01 spec asks for). Generators and
modulators are copied unchanged, so a synthesiser plays program 0 of the subset exactly as it plays
program 0 of the full file. This is how the pinned SoundFont of the built-in corpus was made from
Debian's fluid-soundfont-gm 3.1-5.3 (FluidR3_GM.sf2, MIT licence, sha256 74594e8f...cb0); see
docs/data.md.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

REC = {"phdr": 38, "pbag": 4, "pmod": 10, "pgen": 4, "inst": 22, "ibag": 4, "imod": 10, "igen": 4, "shdr": 46}
GEN_INSTRUMENT, GEN_SAMPLE_ID = 41, 53
PAD = 46  # zero sample points after each sample (SF2 2.01, 6.1)


def chunks(data: bytes, start: int, end: int) -> dict[str, bytes]:
    """{id or LIST type: body} of the RIFF chunks in data[start:end]."""
    out, pos = {}, start
    while pos + 8 <= end:
        cid, size = data[pos:pos + 4].decode("latin-1"), struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        out[body[:4].decode("latin-1") if cid == "LIST" else cid] = body[4:] if cid == "LIST" else body
        pos += 8 + size + (size & 1)
    return out


def records(body: bytes, kind: str) -> list[bytes]:
    n = REC[kind]
    return [body[i:i + n] for i in range(0, len(body), n)]


def chunk(cid: str, body: bytes) -> bytes:
    return cid.encode() + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def subset(data: bytes, bank: int = 0, program: int = 0) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise SystemExit("not an SF2 file")
    top = chunks(data, 12, len(data))
    info, sdta, pdta = chunks(top["INFO"], 0, len(top["INFO"])), top["sdta"], top["pdta"]
    smpl = chunks(sdta, 0, len(sdta))["smpl"]
    if "sm24" in chunks(sdta, 0, len(sdta)):
        raise SystemExit("24-bit SoundFonts (sm24) are not handled")
    p = {k: records(v, k) for k, v in chunks(pdta, 0, len(pdta)).items()}
    u16 = lambda b, o: struct.unpack_from("<H", b, o)[0]  # noqa: E731

    def zones(bags, gens, mods, first, last):  # bag records [first, last) -> (gen list, mod list) each
        return [(gens[u16(bags[b], 0):u16(bags[b + 1], 0)], mods[u16(bags[b], 2):u16(bags[b + 1], 2)])
                for b in range(first, last)]

    which = [i for i, r in enumerate(p["phdr"][:-1]) if u16(r, 22) == bank and u16(r, 20) == program]
    if not which:
        raise SystemExit(f"no preset bank {bank} program {program}")
    ph = p["phdr"][which[0]]
    pzones = zones(p["pbag"], p["pgen"], p["pmod"], u16(ph, 24), u16(p["phdr"][which[0] + 1], 24))
    insts = sorted({u16(g, 2) for gens, _ in pzones for g in gens if u16(g, 0) == GEN_INSTRUMENT})
    izones = {i: zones(p["ibag"], p["igen"], p["imod"], u16(p["inst"][i], 20), u16(p["inst"][i + 1], 20))
              for i in insts}
    samples = {u16(g, 2) for zs in izones.values() for gens, _ in zs for g in gens if u16(g, 0) == GEN_SAMPLE_ID}
    for s in list(samples):  # stereo partners
        if u16(p["shdr"][s], 44) & 0x6:
            samples.add(u16(p["shdr"][s], 42))
    samples = sorted(samples)
    smap, imap = {s: j for j, s in enumerate(samples)}, {i: j for j, i in enumerate(insts)}

    def remap(gens, oper, mapping):
        return [g[:2] + struct.pack("<H", mapping[u16(g, 2)]) if u16(g, 0) == oper else g for g in gens]

    new_smpl, new_shdr = bytearray(), []
    for s in samples:
        r = p["shdr"][s]
        start, end, loop0, loop1 = struct.unpack_from("<4I", r, 20)
        off = len(new_smpl) // 2
        new_smpl += smpl[2 * start:2 * end] + b"\0" * (2 * PAD)
        link = smap.get(u16(r, 42), 0)
        new_shdr.append(r[:20] + struct.pack("<4I", off, off + end - start, off + loop0 - start, off + loop1 - start)
                        + r[36:42] + struct.pack("<H", link) + r[44:])
    new_shdr.append(b"EOS".ljust(20, b"\0") + b"\0" * 26)

    def flatten(zs, oper, mapping, bags, gens, mods):
        for zg, zm in zs:
            bags.append(struct.pack("<HH", len(gens), len(mods)))
            gens += remap(zg, oper, mapping)
            mods += zm

    pbag, pgen, pmod = [], [], []
    flatten(pzones, GEN_INSTRUMENT, imap, pbag, pgen, pmod)
    ibag, igen, imod, inst = [], [], [], []
    for i in insts:
        inst.append(p["inst"][i][:20] + struct.pack("<H", len(ibag)))
        flatten(izones[i], GEN_SAMPLE_ID, smap, ibag, igen, imod)
    phdr = [ph[:24] + struct.pack("<H", 0) + ph[26:],
            b"EOP".ljust(20, b"\0") + struct.pack("<HHH", 0, 0, len(pbag)) + b"\0" * 12]
    inst.append(b"EOI".ljust(20, b"\0") + struct.pack("<H", len(ibag)))
    pbag.append(struct.pack("<HH", len(pgen), len(pmod)))
    ibag.append(struct.pack("<HH", len(igen), len(imod)))
    pgen.append(b"\0" * 4), igen.append(b"\0" * 4), pmod.append(b"\0" * 10), imod.append(b"\0" * 10)

    name = info.get("INAM", b"").rstrip(b"\0").decode("latin-1")
    info_body = b"INFO" + chunk("ifil", info["ifil"]) + chunk("isng", info.get("isng", b"EMU8000\0")) \
        + chunk("INAM", f"{name} - piano only\0".encode("latin-1")) \
        + chunk("ICMT", (info.get("ICMT", b"").rstrip(b"\0") + b"\nSubset: bank 0 program 0 only, by "
                         b"pianogan tools/piano_soundfont.py\0"))
    if "ICOP" in info:
        info_body += chunk("ICOP", info["ICOP"])
    sdta_body = b"sdta" + chunk("smpl", bytes(new_smpl))
    pdta_body = b"pdta" + b"".join(chunk(k, b"".join(v)) for k, v in (
        ("phdr", phdr), ("pbag", pbag), ("pmod", pmod), ("pgen", pgen), ("inst", inst), ("ibag", ibag),
        ("imod", imod), ("igen", igen), ("shdr", new_shdr)))
    body = b"sfbk" + chunk("LIST", info_body) + chunk("LIST", sdta_body) + chunk("LIST", pdta_body)
    return b"RIFF" + struct.pack("<I", len(body)) + body


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    out = subset(src.read_bytes())
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(out)
    print(f"{dst}: {len(out) / 1e6:.2f} MB")
