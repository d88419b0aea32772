// The model-file container: inspect bytes, and load any serializable object by its kind.
#include "bindings.hpp"

#include <perkrec/detail/crc32c.hpp>

namespace perkrec::python {

void bind_io(py::module_& m) {
  m.def(
      "crc32c",
      [](const py::bytes& data) {
        const std::string_view bytes(data);
        py::gil_scoped_release release;
        return detail::crc32c(bytes.data(), bytes.size());
      },
      py::arg("data"),
      "CRC32C (Castagnoli) of the bytes, as the model-file container computes it.");
  m.def(
      "container_info",
      [](const py::bytes& data) {
        const ModelReader r = ModelReader::from_bytes(std::string_view(data));
        py::dict out;
        out["kind"] = r.kind();
        out["library_version"] = r.library_version();
        out["content"] = r.content().dump();
        return out;
      },
      py::arg("data"),
      "Verifies container bytes; returns their kind, library version and content (JSON text).");

  // One parse, then the class named by the container's kind (perkrec/kinds.hpp; every kind is
  // bound before this call).
  m.def(
      "load_any",
      [](const py::bytes& data) -> py::object {
        const std::string_view bytes(data);
        std::optional<ModelReader> reader;
        {
          py::gil_scoped_release release;
          reader.emplace(ModelReader::from_bytes(bytes));
        }
        return read_any(*reader,
                        [](auto&& object) -> py::object { return py::cast(std::move(object)); });
      },
      py::arg("data"));
}

}  // namespace perkrec::python
