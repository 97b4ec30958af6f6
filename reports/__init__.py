"""Reports for supervisors: daily, weekly and monthly figures over any date range, computed
with SQL from the raw rows (call records, the ACD's event log, work orders, revisits), as
pages with charts and as CSV and XLSX downloads."""
