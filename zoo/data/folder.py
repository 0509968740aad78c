"""The ImageFolder layout on the torchvision path, with decode failures named file by file."""

from torchvision.datasets import ImageFolder

from zoo.data.files import DECODE_ERRORS, corrupt_image, decoded_rgb
from zoo.errors import ZooError


class NamingImageFolder(ImageFolder):
    """torchvision's ImageFolder whose decode failures name the file (`zoo.data.files.corrupt_image`); with
    `corrupt_images` skip, the next image that decodes takes the failed one's place."""

    def __init__(self, root, transform, corrupt_images):
        super().__init__(root, transform=transform, loader=decoded_rgb)
        self.corrupt_images = corrupt_images

    def __getitem__(self, index):
        for offset in range(len(self.samples)):
            position = (index + offset) % len(self.samples)
            try:
                return super().__getitem__(position)
            except DECODE_ERRORS as err:
                corrupt_image(self.samples[position][0], err, self.corrupt_images)
        raise ZooError(f"no image under {self.root} can be decoded")
