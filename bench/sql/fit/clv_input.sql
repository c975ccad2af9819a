SELECT * FROM summary
