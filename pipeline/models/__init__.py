"""Models: the spec a command names (`spec`), where its weights come from (`weights`), `hf-hub:ORG/NAME` models
of the local Hugging Face hub cache (`hub`), loading and embedding (`load`), what `artlens models` lists
(`listing`).
"""
