"""The Redis traffic controller: priority queues, locks, result cache, notifications."""
