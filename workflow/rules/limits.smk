# rules of the limits stage (see README)
