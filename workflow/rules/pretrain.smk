# rules of the pretrain stage (see README)
