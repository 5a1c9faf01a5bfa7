//go:build linux && amd64

package linux

import (
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/vm"
)

// cmdRange returns the pages a command touches.
func cmdRange(c vm.Cmd) vm.Range {
	end, _ := c.End()
	if e, ok := end.RoundUp(); ok {
		end = e
	}
	return vm.Range{Start: c.Addr.RoundDown(), End: end}
}

// images splits a command list into images: each FlagBase command starts
// one, and commands before the first belong to an image that does not move.
type image struct {
	first int      // index of its first command
	span  vm.Range // planned pages
	delta uint64   // landed - planned, mod 2^64
}

func splitImages(cmds []vm.Cmd) []image {
	var imgs []image
	for i, c := range cmds {
		r := cmdRange(c)
		if len(imgs) == 0 || c.Flags&vm.FlagBase != 0 {
			imgs = append(imgs, image{first: i, span: r})
			continue
		}
		im := &imgs[len(imgs)-1]
		im.span.Start = min(im.span.Start, r.Start)
		im.span.End = max(im.span.End, r.End)
	}
	return imgs
}

// find returns the image whose planned span holds a.
func findImage(imgs []image, a vm.Addr) *image {
	for i := range imgs {
		if a >= imgs[i].span.Start && a < imgs[i].span.End {
			return &imgs[i]
		}
	}
	return nil
}

// programFile is the file /proc/PID/exe should name: the file mapped first
// by the image holding the program's entry (AT_ENTRY), which for a #!
// script is its interpreter and for a dynamic program is not ld.so.
func programFile(p *execsw.Plan) *vm.File {
	imgs := splitImages(p.Cmds)
	entry := p.ELF.Entry
	if entry == 0 {
		entry = p.Entry
	}
	im := findImage(imgs, entry)
	for i, c := range p.Cmds {
		if im != nil && (i < im.first || (i > im.first && findImage(imgs, c.Addr) != im)) {
			continue
		}
		if c.File != nil && (c.Op == vm.OpMap || c.Op == vm.OpRead) {
			return c.File
		}
	}
	return nil
}
