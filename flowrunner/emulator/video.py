"""Placeholder video for the emulator: a real H.264 MP4 made from the request, in pure
Python, that browsers play.

Every frame is an IDR picture of I_PCM macroblocks (the samples stored as they are: no
prediction, no transform), so encoding is only bit packing: an SPS, a PPS and one slice
per frame, in an ISO BMFF file (ftyp, moov with an avcC sample entry, mdat). A bar sweeps
across a gradient whose colours come from the request, so different prompts give
different files.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator


class _Bits:
    """A bit writer: Exp-Golomb codes for headers, whole bytes for PCM samples."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.value = 0
        self.count = 0  # bits in ``value`` not yet in ``out``

    def u(self, count: int, value: int) -> None:
        self.value = (self.value << count) | (value & ((1 << count) - 1))
        self.count += count
        while self.count >= 8:
            self.count -= 8
            self.out.append((self.value >> self.count) & 0xFF)
        self.value &= (1 << self.count) - 1

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        if self.count:
            self.u(8 - self.count, 0)

    def raw(self, data: bytes) -> None:
        assert self.count == 0
        self.out += data

    def trailing(self) -> bytes:
        self.u(1, 1)
        self.align_zero()
        return bytes(self.out)


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit: its header byte, then the payload with emulation prevention bytes."""
    out = bytearray([header])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(width_mbs: int, height_mbs: int) -> bytes:
    bits = _Bits()
    bits.u(8, 66)  # Baseline
    bits.u(8, 0xC0)  # constraint_set0 and set1
    bits.u(8, 30)  # level 3.0
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(0)  # log2_max_frame_num_minus4
    bits.ue(2)  # pic_order_cnt_type: output order is decoding order
    bits.ue(1)  # max_num_ref_frames
    bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    bits.ue(width_mbs - 1)
    bits.ue(height_mbs - 1)
    bits.u(1, 1)  # frame_mbs_only_flag
    bits.u(1, 1)  # direct_8x8_inference_flag
    bits.u(1, 0)  # frame_cropping_flag
    bits.u(1, 0)  # vui_parameters_present_flag
    return _nal(0x67, bits.trailing())


def _pps() -> bytes:
    bits = _Bits()
    bits.ue(0)  # pic_parameter_set_id
    bits.ue(0)  # seq_parameter_set_id
    bits.u(1, 0)  # CAVLC
    bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    bits.ue(0)  # num_slice_groups_minus1
    bits.ue(0)  # num_ref_idx_l0_default_active_minus1
    bits.ue(0)  # num_ref_idx_l1_default_active_minus1
    bits.u(1, 0)  # weighted_pred_flag
    bits.u(2, 0)  # weighted_bipred_idc
    bits.se(0)  # pic_init_qp_minus26
    bits.se(0)  # pic_init_qs_minus26
    bits.se(0)  # chroma_qp_index_offset
    bits.u(1, 1)  # deblocking_filter_control_present_flag
    bits.u(1, 0)  # constrained_intra_pred_flag
    bits.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x68, bits.trailing())


def _slice(index: int, macroblocks: list[bytes]) -> bytes:
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (every slice of the picture)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num (an IDR picture)
    bits.ue(index % 2)  # idr_pic_id: consecutive IDR pictures differ
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc: off
    for samples in macroblocks:
        bits.ue(25)  # mb_type I_PCM
        bits.align_zero()  # pcm_alignment_zero_bit
        bits.raw(samples)
    return _nal(0x65, bits.trailing())


def _ycbcr(red: int, green: int, blue: int) -> tuple[int, int, int]:
    """BT.601 studio range, kept within 1..254 (a PCM sample of 0 is reserved)."""
    y = 16 + (65.738 * red + 129.057 * green + 25.064 * blue) / 256
    cb = 128 + (-37.945 * red - 74.494 * green + 112.439 * blue) / 256
    cr = 128 + (112.439 * red - 94.154 * green - 18.285 * blue) / 256
    return tuple(max(1, min(254, round(v))) for v in (y, cb, cr))  # type: ignore[return-value]


def _frame(width_mbs: int, height_mbs: int, index: int, frames: int,
           top: tuple[int, int, int], bottom: tuple[int, int, int]) -> list[bytes]:
    """The frame's macroblocks: a vertical gradient with a light bar at this frame's place."""
    width = width_mbs * 16
    bar = (index * width) // max(1, frames)
    lit = [bar <= x < bar + 12 for x in range(width)]
    white = _ycbcr(255, 255, 255)
    rows = height_mbs * 16
    luma_rows, cb_rows, cr_rows = [], [], []
    for y in range(rows):
        t = y / rows
        base = _ycbcr(*(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
        luma_rows.append(bytes(white[0] if on else base[0] for on in lit))
        if y % 2 == 0:
            cb_rows.append(bytes(white[1] if lit[x] else base[1] for x in range(0, width, 2)))
            cr_rows.append(bytes(white[2] if lit[x] else base[2] for x in range(0, width, 2)))
    blocks = []
    for mb_y in range(height_mbs):
        for mb_x in range(width_mbs):
            luma = b"".join(row[mb_x * 16:mb_x * 16 + 16]
                            for row in luma_rows[mb_y * 16:mb_y * 16 + 16])
            cb = b"".join(row[mb_x * 8:mb_x * 8 + 8] for row in cb_rows[mb_y * 8:mb_y * 8 + 8])
            cr = b"".join(row[mb_x * 8:mb_x * 8 + 8] for row in cr_rows[mb_y * 8:mb_y * 8 + 8])
            blocks.append(luma + cb + cr)
    return blocks


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def mp4(seed: str, *, width: int = 128, height: int = 80, fps: int = 12,
        seconds: float = 1.0) -> bytes:
    """A playable H.264 MP4 (``width`` and ``height`` in multiples of 16)."""
    digest = hashlib.sha256(seed.encode()).digest()
    top = (digest[0], digest[1], digest[2])
    bottom = (digest[3] // 3, digest[4] // 3, digest[5] // 3)
    width_mbs, height_mbs = max(1, width // 16), max(1, height // 16)
    width, height = width_mbs * 16, height_mbs * 16
    frames = max(1, round(fps * seconds))
    sps, pps = _sps(width_mbs, height_mbs), _pps()
    samples = []
    for index in range(frames):
        nal = _slice(index, _frame(width_mbs, height_mbs, index, frames, top, bottom))
        samples.append(struct.pack(">I", len(nal)) + nal)
    timescale = fps * 1000
    delta = 1000
    duration_ms = frames * 1000 // fps

    avcc = _box(b"avcC", bytes([1, 66, 0xC0, 30, 0xFF, 0xE1]) + struct.pack(">H", len(sps))
                + sps + bytes([1]) + struct.pack(">H", len(pps)) + pps)
    avc1 = _box(b"avc1", bytes(6) + struct.pack(">H", 1) + bytes(16)
                + struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1)
                + bytes(32) + struct.pack(">Hh", 0x18, -1) + avcc)
    stsd = _full(b"stsd", 0, 0, struct.pack(">I", 1) + avc1)
    stts = _full(b"stts", 0, 0, struct.pack(">III", 1, frames, delta))
    stsc = _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1))
    stsz = _full(b"stsz", 0, 0, struct.pack(">II", 0, frames)
                 + b"".join(struct.pack(">I", len(s)) for s in samples))

    def moov(offset: int) -> bytes:
        stco = _full(b"stco", 0, 0, struct.pack(">II", 1, offset))
        stbl = _box(b"stbl", stsd + stts + stsc + stsz + stco)
        dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1)
                                   + _full(b"url ", 0, 1, b"")))
        minf = _box(b"minf", _full(b"vmhd", 0, 1, bytes(8)) + dinf + stbl)
        hdlr = _full(b"hdlr", 0, 0, bytes(4) + b"vide" + bytes(12) + b"VideoHandler\x00")
        mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, frames * delta,
                                                0x55C4, 0))
        mdia = _box(b"mdia", mdhd + hdlr + minf)
        tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, duration_ms) + bytes(8)
                     + struct.pack(">hhhH", 0, 0, 0, 0) + _MATRIX
                     + struct.pack(">II", width << 16, height << 16))
        mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIIIIH", 0, 0, 1000, duration_ms, 0x10000,
                                                0x100) + bytes(10) + _MATRIX + bytes(24)
                     + struct.pack(">I", 2))
        return _box(b"moov", mvhd + _box(b"trak", tkhd + mdia))

    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    head = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(head) + _box(b"mdat", b"".join(samples))


def big_mp4_stream(total: int) -> Iterator[bytes]:
    """A structurally whole MP4 of exactly ``total`` bytes (a movie header, then one large
    media box), generated as it streams: for tests of large downloads."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    moov = _box(b"moov", _full(b"mvhd", 0, 0, struct.pack(">IIIIIH", 0, 0, 1000, 1000,
                                                           0x10000, 0x100)
                               + bytes(10) + _MATRIX + bytes(24) + struct.pack(">I", 2)))
    payload = max(0, total - len(ftyp) - len(moov) - 8)
    yield ftyp + moov + struct.pack(">I", payload + 8) + b"mdat"
    block = bytes(1 << 16)
    left = payload
    while left > 0:
        piece = block if left >= len(block) else block[:left]
        left -= len(piece)
        yield piece
