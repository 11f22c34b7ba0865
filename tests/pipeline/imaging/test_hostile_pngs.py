"""PNG chunks that inflate past Pillow's limits: a rejected image with the reason, never an exception that ends
a run (Pillow raises a plain ValueError for them, at open or at load)."""
import pytest
from PIL import ImageFile, PngImagePlugin

import imagefactory as f
from artlens.pipeline.imaging.decode import ImageRejected, decode_image, open_checked
from artlens.pipeline.imaging.gpu.decoders import gpu_eligible

CHUNKS = [b"iCCP", b"zTXt", b"iTXt"]


@pytest.mark.parametrize("after_idat", [False, True], ids=["before-IDAT", "after-IDAT"])
@pytest.mark.parametrize("kind", CHUNKS, ids=[k.decode() for k in CHUNKS])
def test_png_chunk_inflating_past_pillows_limit_is_a_rejected_image(kind, after_idat):
    data = f.png_inflating_chunk(kind, after_idat=after_idat)
    assert len(data) < 10_000
    with pytest.raises(ImageRejected) as caught:
        decode_image(data)
    reason = str(caught.value)
    assert "Decompressed data too large" in reason and "chunk inflates past Pillow's limit" in reason
    assert reason.startswith("cannot read the image header" if not after_idat else "cannot decode PNG")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False and PngImagePlugin.MAX_TEXT_CHUNK == 2**20  # left as they are


@pytest.mark.parametrize("kind", CHUNKS, ids=[k.decode() for k in CHUNKS])
def test_the_same_chunk_within_the_limit_decodes(kind):
    assert decode_image(f.png_inflating_chunk(kind, inflated=1000)).size == (32, 32)


def test_the_gpu_path_leaves_such_a_png_to_the_cpu_path_instead_of_raising():
    data = f.png_inflating_chunk(b"iCCP")
    assert gpu_eligible(data, 10**8) is None
    with pytest.raises(ImageRejected):
        open_checked(data)
