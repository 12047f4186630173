"""Looking at a trained model: evaluation, Grad-CAM, inside/ (feature maps, fields, attribution), plots, reports.
May import data/, model/ and the peers records/, train/, teacher/; never experiments/, app/ or ui/.
"""
