"""Backup and restore: the storage, the snapshot job and the alerts the velero addon installs."""
