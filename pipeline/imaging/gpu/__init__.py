"""The CUDA image path: nvJPEG / nvImageCodec decoders (`decoders`), the main-process device stage (`stage`),
and the batched Triton resize + crop (`resample`, `resample_kernel`).
"""
