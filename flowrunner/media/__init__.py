"""Files as media: what a file is and whether it is whole (`formats`: images, video,
audio), and the Pillow operations local steps and the emulator use (`imaging`).

May import: the leaves.
"""
