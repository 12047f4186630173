"""Airbench teachers (airbench), their stored logit bank (bank) and the teacher-bank command (cli).
May import data/, model/ and the peers records/, train/, analysis/; never experiments/, app/ or ui/.
"""
