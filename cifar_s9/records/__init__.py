"""What a run leaves behind: checkpoints and their cards, provenance, the finalize step.
May import data/, model/ and the peers train/, analysis/, teacher/; never experiments/, app/ or ui/.
"""
