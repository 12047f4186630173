"""Looking at a trained model: evaluation, Grad-CAM, inside/ (feature maps, fields, attribution), faithfulness
(which map to trust: ROAD scores of every map), plots, reports.
May import data/, model/ and the peers records/, train/, teacher/; never experiments/, app/ or ui/.
"""
