"""AI engines behind small interfaces: speech synthesis (TTS) and speech recognition (ASR)."""
