"""Purgatory sync as pykka actors: pure policy objects plus thin actor shells."""
