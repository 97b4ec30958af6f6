"""The knowledge base: entries operators answer from, searched in Chinese (jieba words in
SQLite FTS5 or PostgreSQL full text), edited by supervisors, imported and exported."""
