"""Cheap checks that image files are complete, so a bad file is skipped up front
instead of killing a long run, and what a file that passes them but cannot be decoded
does (data.corrupt_images): both loaders use them."""

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from zoo.errors import ZooError

# Leading bytes of the image formats both loaders decode, to reject non-images before the run.
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x0cjP", b"\xff\x4f\xff\x51")
_PNM_SIGNATURE = re.compile(rb"P[1-6]\s")
_JPEG_END = b"\xff\xd9"
_TAIL_BYTES = 1024  # a JPEG's end-of-image marker may be followed by a little padding


def unreadable_reason(path):
    """Why `path` cannot be a complete image, from its first and last bytes; None if it looks fine."""
    try:
        fd = os.open(path, os.O_RDONLY)  # raw reads: this runs once per training image
        try:
            head = os.pread(fd, 12, 0)
            tail = os.pread(fd, _TAIL_BYTES, max(0, os.fstat(fd).st_size - _TAIL_BYTES))
        finally:
            os.close(fd)
    except OSError as err:
        return f"cannot read it ({err.strerror})"
    if head.startswith(b"\xff\xd8\xff"):
        # Entropy-coded JPEG data never holds FF D9, so a missing marker means a cut-off file.
        return None if _JPEG_END in tail else "truncated JPEG (no end-of-image marker)"
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if webp or head.startswith(_IMAGE_SIGNATURES) or _PNM_SIGNATURE.match(head):
        return None
    return "not an image" if head else "empty file"


def readable_samples(samples, threads=16, chunk=256, stacklevel=2):
    """`samples` ((path, label) pairs) without the files DALI cannot decode; warns with their names.

    Reads a few bytes at each end of every file (threads overlap the I/O on cold or
    network storage), so a bad file is skipped up front instead of killing a long run.
    """
    paths = [path for path, _ in samples]
    with ThreadPoolExecutor(threads) as pool:
        chunks = pool.map(
            lambda start: [unreadable_reason(path) for path in paths[start : start + chunk]], range(0, len(paths), chunk)
        )
        reasons = [reason for reasons_of_chunk in chunks for reason in reasons_of_chunk]
    bad = [f"{path} ({reason})" for path, reason in zip(paths, reasons) if reason]
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        warnings.warn(f"skipping {len(bad)} unreadable image(s): {shown}", stacklevel=stacklevel)
    return [sample for sample, reason in zip(samples, reasons) if not reason]



@lru_cache(maxsize=8)
def readable_folder_samples(samples):
    """`readable_samples` of an ImageFolder's sample tuple, once per folder and process."""
    return tuple(readable_samples(list(samples), stacklevel=4))


def corrupt_image(path, reason, corrupt_images):
    """The image at `path` failed to decode (`reason`): one ZooError line naming it (data.corrupt_images=stop), or a
    warning naming it (skip)."""
    reason = str(reason).replace(f" '{path}'", "")  # PIL names some files itself
    if corrupt_images == "stop":
        raise ZooError(f"cannot decode {path}: {reason} (delete or replace the file, or set data.corrupt_images=skip "
                       "to train without it)")
    warnings.warn(f"skipping {path}: cannot decode it ({reason}); data.corrupt_images=skip", stacklevel=3)


def decoded_rgb(path):
    """The image at `path` decoded whole (PIL), as RGB."""
    from PIL import Image

    with open(path, "rb") as file:
        return Image.open(file).convert("RGB")


# What PIL raises for a file it cannot decode (UnidentifiedImageError is an OSError).
DECODE_ERRORS = (OSError, SyntaxError, ValueError)


def undecodable(paths, threads=16):
    """{path: reason} of the files PIL cannot decode, in their order: the search for the file a DALI decode
    failure does not name (threads overlap the reads and the decoding, which PIL runs without the GIL)."""

    def reason(path):
        try:
            decoded_rgb(path)
        except DECODE_ERRORS as err:
            return str(err)
        return None

    with ThreadPoolExecutor(threads) as pool:
        reasons = list(pool.map(reason, paths, chunksize=64))
    return {path: why for path, why in zip(paths, reasons) if why}
