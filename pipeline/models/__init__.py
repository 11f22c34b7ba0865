"""Models: the spec a command names (`spec`), where its weights come from (`weights`), loading and embedding
(`load`).
"""
