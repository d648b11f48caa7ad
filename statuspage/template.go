package statuspage

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"strings"
)

var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
)

// The page's only style is the inline style sheet, allowed by its hash:
// nothing else may load, run or be styled, so that a value that slipped
// past the escaping would still have no effect. The page has no script;
// it reloads itself with a meta refresh, which the policy does not govern.
var (
	pageTemplate          *template.Template
	contentSecurityPolicy string
)

func init() {
	css := strings.TrimSpace(pageCSS)
	sum := sha256.Sum256([]byte(css))
	contentSecurityPolicy = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// The style sheet goes in as text of the template, not as a value:
	// html/template writes template text as it is, so the bytes served
	// are those hashed.
	pageTemplate = template.Must(template.New("page").Parse(strings.Replace(pageHTML, "/*CSS*/", css, 1)))
}
