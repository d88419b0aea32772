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
      py::arg("data"), "CRC32C (Castagnoli) of the bytes, as the model-file container computes it.");
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

  // One parse, then the class named by the container's kind (bound before this call).
  m.def(
      "load_any",
      [](const py::bytes& data) -> py::object {
        const std::string_view bytes(data);
        std::optional<ModelReader> reader;
        {
          py::gil_scoped_release release;
          reader.emplace(ModelReader::from_bytes(bytes));
        }
        const std::string& kind = reader->kind();
        if (kind == IdMap::kind) return py::cast(IdMap::read(*reader, ""));
        if (kind == Catalog::kind) return py::cast(Catalog::read(*reader, ""));
        if (kind == UserTable::kind) return py::cast(UserTable::read(*reader, ""));
        if (kind == EventLog::kind) return py::cast(EventLog::read(*reader, ""));
        if (kind == Popularity::kind) return py::cast(Popularity::read(*reader, ""));
        if (kind == FM::kind) return py::cast(FM::read(*reader, ""));
        if (kind == ALS::kind) return py::cast(ALS::read(*reader, ""));
        if (kind == BPR::kind) return py::cast(BPR::read(*reader, ""));
        if (kind == ItemKNN::kind) return py::cast(ItemKNN::read(*reader, ""));
        if (kind == PreferenceModel::kind) return py::cast(PreferenceModel::read(*reader, ""));
        if (kind == UpliftModel::kind) return py::cast(UpliftModel::read(*reader, ""));
        if (kind == CLVModel::kind) return py::cast(CLVModel::read(*reader, ""));
        if (kind == BenefitPlannerFile::kind) return py::cast(BenefitPlannerFile::read(*reader, ""));
        throw ModelFormatError(ModelFormatCode::wrong_kind,
                               "load: this version of perkrec cannot load a '" + kind + "'");
      },
      py::arg("data"));
}

}  // namespace perkrec::python
