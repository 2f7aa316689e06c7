module local.build/git-server

go 1.26
