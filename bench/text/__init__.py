"""The text layer below the stages: words and features (`words`), and the spaCy pipeline (`nlp`)."""
