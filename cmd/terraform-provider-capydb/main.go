// Command terraform-provider-capydb is the CapyDB Terraform provider
// (protocol v6). Terraform starts it; run it with -debug to attach a debugger.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/capydb/capydb/internal/tfprovider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers such as delve")
	flag.Parse()
	err := providerserver.Serve(context.Background(), tfprovider.New(version), providerserver.ServeOpts{
		Address: tfprovider.Address,
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
