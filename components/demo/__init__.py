"""`regionedit demo`: a Gradio page over the same `Editor` as `regionedit edit`."""
