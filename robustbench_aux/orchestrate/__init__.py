"""The orchestrators: whole workflows over the CLI's steps.

pipeline (data -> CIFAR-C -> grid -> report: ``make demo``, ``make reproduce-cifar100``) and
regression (the CI regression check on baselines/ci/, which runs its grid through the pipeline's
helpers). Only the CLI's commands import them.
"""
