module {{name}}

go 1.25

require gust.dev/sdk/go v0.0.0

// gust's Go SDK, from the gust checkout `gust new` ran from.
replace gust.dev/sdk/go => {{gust_sdk}}/go
