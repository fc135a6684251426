module example.com/users

go 1.25

require gust.dev/sdk/go v0.0.0

replace gust.dev/sdk/go => ../../../sdk/go
