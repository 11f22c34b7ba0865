"""The Triton kernel behind pipeline/imaging/gpu/resample.py (imported only where Triton is; on CUDA, or in Triton's
interpreter for the tests)."""
import triton
import triton.language as tl


@triton.jit
def aa_filter(x, BICUBIC: tl.constexpr):
    x = tl.abs(x)
    if BICUBIC:  # Keys' cubic with a = -0.5, as PIL and torch
        w = tl.where(x < 1.0, (1.5 * x - 2.5) * x * x + 1.0,
                     tl.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * -0.5, 0.0))
    else:
        w = tl.maximum(1.0 - x, 0.0)
    return w


@triton.jit
def to_uint8(v):
    """clamp to [0, 255], then round half to even, as torch's clamp_().round_()"""
    v = tl.minimum(tl.maximum(v, 0.0), 255.0)
    f = tl.floor(v)
    d = v - f
    odd = (f.to(tl.int32) & 1) == 1
    return tl.where((d > 0.5) | ((d == 0.5) & odd), f + 1.0, f).to(tl.uint8)


@triton.jit
def axis(o, size, out_size, HALF: tl.constexpr):
    """first input index, count and centre of output index `o`, and the inverse filter stretch."""
    scale = size.to(tl.float32) / out_size.to(tl.float32)
    support = tl.where(scale >= 1.0, HALF * scale, HALF)
    invscale = tl.where(scale >= 1.0, 1.0 / scale, 1.0)
    centre = scale * (o.to(tl.float32) + 0.5)
    lo = tl.maximum((centre - support + 0.5).to(tl.int32), 0)
    n = tl.minimum((centre + support + 0.5).to(tl.int32), size) - lo
    return lo, n, centre, invscale


@triton.jit
def resize_crop_kernel(table, out, CH: tl.constexpr, CW: tl.constexpr, HALF: tl.constexpr,
                       BICUBIC: tl.constexpr, BLOCK: tl.constexpr):
    """Program (b, tile): BLOCK output pixels of image b, all three channels. `table` row b (int64):
    address, height, width, resized height, resized width, crop top, crop left, strides y/x/channel
    (elements), taps y, taps x. `out`: uint8 [N, 3, CH, CW]."""
    b = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < CH * CW
    m = table + b * 12 + 1
    h = tl.load(m + 0).to(tl.int32)
    w = tl.load(m + 1).to(tl.int32)
    oh = tl.load(m + 2).to(tl.int32)
    ow = tl.load(m + 3).to(tl.int32)
    top = tl.load(m + 4).to(tl.int32)
    left = tl.load(m + 5).to(tl.int32)
    sy = tl.load(m + 6)
    sx = tl.load(m + 7)
    sc = tl.load(m + 8)
    ny = tl.load(m + 9).to(tl.int32)
    nx = tl.load(m + 10).to(tl.int32)
    src = tl.load(table + b * 12).to(tl.pointer_type(tl.uint8))
    y0, ysize, cy, iy = axis(top + offs // CW, h, oh, HALF)
    x0, xsize, cx, ix = axis(left + offs % CW, w, ow, HALF)
    totx = tl.zeros([BLOCK], tl.float32)
    for i in range(0, nx):
        totx += tl.where(i < xsize, aa_filter(((x0 + i).to(tl.float32) - cx + 0.5) * ix, BICUBIC), 0.0)
    toty = tl.zeros([BLOCK], tl.float32)
    for j in range(0, ny):
        toty += tl.where(j < ysize, aa_filter(((y0 + j).to(tl.float32) - cy + 0.5) * iy, BICUBIC), 0.0)
    totx = tl.where(totx == 0.0, 1.0, totx)
    toty = tl.where(toty == 0.0, 1.0, toty)
    r = tl.zeros([BLOCK], tl.float32)
    g = tl.zeros([BLOCK], tl.float32)
    bl = tl.zeros([BLOCK], tl.float32)
    for j in range(0, ny):
        wy = tl.where(j < ysize, aa_filter(((y0 + j).to(tl.float32) - cy + 0.5) * iy, BICUBIC), 0.0) / toty
        row = src + (y0 + j).to(tl.int64) * sy
        tr = tl.zeros([BLOCK], tl.float32)
        tg = tl.zeros([BLOCK], tl.float32)
        tb = tl.zeros([BLOCK], tl.float32)
        for i in range(0, nx):
            ok = valid & (j < ysize) & (i < xsize)
            wx = tl.where(i < xsize, aa_filter(((x0 + i).to(tl.float32) - cx + 0.5) * ix, BICUBIC), 0.0) / totx
            p = row + (x0 + i).to(tl.int64) * sx
            tr += wx * tl.load(p, mask=ok, other=0).to(tl.float32)
            tg += wx * tl.load(p + sc, mask=ok, other=0).to(tl.float32)
            tb += wx * tl.load(p + 2 * sc, mask=ok, other=0).to(tl.float32)
        r += wy * tr
        g += wy * tg
        bl += wy * tb
    plane = CH * CW
    o = out + b.to(tl.int64) * 3 * plane + offs
    tl.store(o, to_uint8(r), mask=valid)
    tl.store(o + plane, to_uint8(g), mask=valid)
    tl.store(o + 2 * plane, to_uint8(bl), mask=valid)
