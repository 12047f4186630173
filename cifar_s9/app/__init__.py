"""The Gradio app's back end: models per session (serving), the training and experiment slots, uploads, limits.
May import every layer below it (experiments/ and down); never ui/. Keep imports light: the app starts from here.
"""
