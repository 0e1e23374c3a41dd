"""Pure rules of the business: money, calendars, schedules, geometry. No I/O, no imports of ours."""
