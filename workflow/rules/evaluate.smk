# rules of the evaluate stage (see README)
