"""The world's frozen models, trained by the pipeline on generated scenes (DESIGN §10).

Each is saved in its real checkpoint's format and loaded back by the project's one loader for
that family: the method's CLIP and the metric CLIP as open_clip folders, the generator as a
diffusers Stable Diffusion inpainting folder.
"""
