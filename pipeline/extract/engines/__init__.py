"""Extraction engines beside the local one: `devices` (one process per device) and `raydata` (Ray Data).
"""
