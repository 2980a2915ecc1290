module baton/sdk/go

go 1.19
