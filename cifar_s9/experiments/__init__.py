"""A/B experiments: the runner, statistics, the trackio tracker, the ZeroGPU slot and the command line.
May import everything below it (train/, analysis/, records/, teacher/, data/, model/); never app/ or ui/.
"""
