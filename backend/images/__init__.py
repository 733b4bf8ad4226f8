"""Guest images: the tiny initramfs built from Debian packages, cloud images, the NoCloud seed."""
