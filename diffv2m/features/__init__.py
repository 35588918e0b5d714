"""Video and audio features, numpy/librosa/scipy only (importable with torch blocked).

Modules:
* ``colour``   the 3072-d per-second colour ("emotion") histogram (16 hue x 12 sat x 16 val);
* ``cuts_motion`` frame differences, scene cuts, motion energy, per-second reductions, pseudo
  beat (the per-second visual rhythm);
* ``cue_track`` cuts and motion at the audio latent's frame rate (the DiT's cue track);
* ``rhythm``   the paper's low-resolution ODF of music, tempogram/mel variants, beats, onsets;
* ``video``    ``VideoFeatures`` of a FrameSource in one pass;
* ``feature_cache`` the one feature cache (generation's and training's entries, one version);
* ``semantic`` the semantic-encoder protocol, CLIP preprocessing, a local-weights open_clip
  backend (torch imported only when it is constructed);
* ``plots``    PNG plots (matplotlib, lazily imported);
* ``image``    small numpy resize / grey helpers shared by the above.
"""
