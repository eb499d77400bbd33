"""paperloom plugin video2game: Video2Game (CVPR 2024) part 1, video -> NeRF -> mesh -> baked textured mesh."""
